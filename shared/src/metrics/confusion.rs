//! Confusion matrix of a multi-class classifier, with accuracy and per-class/macro
//! precision, recall and F1.

use serde::{Deserialize, Serialize};

use super::{MetricsError, check_labels, check_same_len};

/// Counts of (true class, predicted class) pairs; rows are true classes, columns predicted
/// classes, as in scikit-learn's `confusion_matrix(y_true, y_pred, labels=range(n))`.
///
/// **Invariant:** square, at least one class, at least one sample.
///
/// Serialises as the nested array of rows, e.g. `[[10,1],[2,7]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<usize>>", into = "Vec<Vec<usize>>")]
pub struct ConfusionMatrix {
    n_classes: usize,
    /// Row-major `n_classes × n_classes` counts.
    counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// Tallies paired true and predicted labels, each in `0..n_classes`.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`], [`MetricsError::Empty`] when there are no samples,
    /// [`MetricsError::LabelOutOfRange`].
    pub fn from_labels(
        y_true: &[usize],
        y_pred: &[usize],
        n_classes: usize,
    ) -> Result<Self, MetricsError> {
        check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
        if y_true.is_empty() {
            return Err(MetricsError::Empty("samples"));
        }
        check_labels(y_true, n_classes)?;
        check_labels(y_pred, n_classes)?;
        let mut counts = vec![0; n_classes * n_classes];
        for (&t, &p) in y_true.iter().zip(y_pred) {
            counts[t * n_classes + p] += 1;
        }
        Ok(Self { n_classes, counts })
    }

    /// Builds the matrix from its rows (true classes) of counts per predicted class.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] when a row's length differs from the number of
    /// rows; [`MetricsError::Empty`] when there are no rows or all counts are zero.
    pub fn from_rows(rows: &[Vec<usize>]) -> Result<Self, MetricsError> {
        let n_classes = rows.len();
        if n_classes == 0 {
            return Err(MetricsError::Empty("classes"));
        }
        for row in rows {
            check_same_len("confusion row", row.len(), "rows", n_classes)?;
        }
        let counts: Vec<usize> = rows.concat();
        if counts.iter().all(|&c| c == 0) {
            return Err(MetricsError::Empty("samples"));
        }
        Ok(Self { n_classes, counts })
    }

    /// Number of classes (rows and columns).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Row-major counts: entry `t * n_classes + p` counts samples of true class `t`
    /// predicted as `p`.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// The rows of the matrix, one per true class.
    pub fn rows(&self) -> Vec<Vec<usize>> {
        self.counts
            .chunks(self.n_classes)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Samples of true class `t` predicted as `p`.
    ///
    /// # Panics
    /// If `t` or `p` is not below [`Self::n_classes`].
    pub fn get(&self, t: usize, p: usize) -> usize {
        assert!(
            t < self.n_classes && p < self.n_classes,
            "class out of range"
        );
        self.counts[t * self.n_classes + p]
    }

    /// Total number of samples.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Samples whose true class is `c` (scikit-learn's `support`).
    ///
    /// # Panics
    /// If `c` is not below [`Self::n_classes`].
    pub fn support(&self, c: usize) -> usize {
        (0..self.n_classes).map(|p| self.get(c, p)).sum()
    }

    /// Samples predicted as class `c`.
    ///
    /// # Panics
    /// If `c` is not below [`Self::n_classes`].
    pub fn predicted(&self, c: usize) -> usize {
        (0..self.n_classes).map(|t| self.get(t, c)).sum()
    }

    /// Fraction of samples on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.n_classes).map(|c| self.get(c, c)).sum();
        correct as f64 / self.total() as f64
    }

    /// Precision of class `c`, `tp / (tp + fp)`; 0 when `c` is never predicted
    /// (scikit-learn's `zero_division=0`).
    ///
    /// # Panics
    /// If `c` is not below [`Self::n_classes`].
    pub fn precision(&self, c: usize) -> f64 {
        ratio_or_zero(self.get(c, c), self.predicted(c))
    }

    /// Recall (sensitivity) of class `c`, `tp / (tp + fn)`; 0 when `c` never occurs.
    ///
    /// # Panics
    /// If `c` is not below [`Self::n_classes`].
    pub fn recall(&self, c: usize) -> f64 {
        ratio_or_zero(self.get(c, c), self.support(c))
    }

    /// F1 score of class `c`, `2 tp / (2 tp + fp + fn)` (the harmonic mean of precision and
    /// recall); 0 when `c` neither occurs nor is predicted.
    ///
    /// # Panics
    /// If `c` is not below [`Self::n_classes`].
    pub fn f1(&self, c: usize) -> f64 {
        let tp = self.get(c, c);
        ratio_or_zero(2 * tp, self.support(c) + self.predicted(c))
    }

    /// Unweighted mean of [`Self::precision`] over **all** `n_classes` classes, including
    /// classes absent from both labels and predictions (they count as 0). This is
    /// scikit-learn's `average="macro"` with `labels=range(n_classes)`.
    pub fn macro_precision(&self) -> f64 {
        self.macro_of(Self::precision)
    }

    /// Unweighted mean of [`Self::recall`] over all classes (see [`Self::macro_precision`]).
    pub fn macro_recall(&self) -> f64 {
        self.macro_of(Self::recall)
    }

    /// Unweighted mean of the per-class [`Self::f1`] over all classes (scikit-learn's
    /// macro F1; not the F1 of macro precision and macro recall).
    pub fn macro_f1(&self) -> f64 {
        self.macro_of(Self::f1)
    }

    fn macro_of(&self, per_class: fn(&Self, usize) -> f64) -> f64 {
        (0..self.n_classes).map(|c| per_class(self, c)).sum::<f64>() / self.n_classes as f64
    }
}

fn ratio_or_zero(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl TryFrom<Vec<Vec<usize>>> for ConfusionMatrix {
    type Error = MetricsError;

    fn try_from(rows: Vec<Vec<usize>>) -> Result<Self, Self::Error> {
        Self::from_rows(&rows)
    }
}

impl From<ConfusionMatrix> for Vec<Vec<usize>> {
    fn from(m: ConfusionMatrix) -> Self {
        m.rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{Y_PRED, Y_TRUE};

    fn assert_all_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-12, "[{i}]: {g} vs {w}");
        }
    }

    // from sklearn.metrics import confusion_matrix, accuracy_score, precision_recall_fscore_support
    // y_true = [1,1,0,4,2,3,1,0,4,2,2,1,0,3,2,0,0,0,0,1,0,1,2,0,4,3,0,2,0,0]
    // y_pred = [1,1,2,4,2,3,1,0,4,0,2,2,0,3,2,0,1,0,0,1,0,0,2,0,4,1,0,1,0,0]
    // L = list(range(5))
    // confusion_matrix(y_true, y_pred, labels=L).tolist()
    //   [[10, 1, 1, 0, 0], [1, 4, 1, 0, 0], [1, 1, 4, 0, 0], [0, 1, 0, 2, 0], [0, 0, 0, 0, 3]]
    // accuracy_score(y_true, y_pred)  -> 0.7666666666666667
    // precision_recall_fscore_support(y_true, y_pred, labels=L, average=None, zero_division=0)
    //   p = [0.8333333333333334, 0.5714285714285714, 0.6666666666666666, 1.0, 1.0]
    //   r = [0.8333333333333334, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 1.0]
    //   f = [0.8333333333333334, 0.6153846153846154, 0.6666666666666666, 0.8, 1.0]
    // ... average='macro' -> p 0.8142857142857143, r 0.7666666666666666, f 0.7830769230769231
    #[test]
    fn five_grades_match_sklearn() {
        let m = ConfusionMatrix::from_labels(&Y_TRUE, &Y_PRED, 5).unwrap();
        assert_eq!(
            m.rows(),
            vec![
                vec![10, 1, 1, 0, 0],
                vec![1, 4, 1, 0, 0],
                vec![1, 1, 4, 0, 0],
                vec![0, 1, 0, 2, 0],
                vec![0, 0, 0, 0, 3],
            ]
        );
        assert_eq!(m.total(), 30);
        assert_eq!(m.get(3, 1), 1);
        assert!((m.accuracy() - 0.7666666666666667).abs() <= 1e-12);
        let per =
            |f: fn(&ConfusionMatrix, usize) -> f64| (0..5).map(|c| f(&m, c)).collect::<Vec<_>>();
        assert_all_close(
            &per(ConfusionMatrix::precision),
            &[
                0.8333333333333334,
                0.5714285714285714,
                0.6666666666666666,
                1.0,
                1.0,
            ],
        );
        assert_all_close(
            &per(ConfusionMatrix::recall),
            &[
                0.8333333333333334,
                0.6666666666666666,
                0.6666666666666666,
                0.6666666666666666,
                1.0,
            ],
        );
        assert_all_close(
            &per(ConfusionMatrix::f1),
            &[
                0.8333333333333334,
                0.6153846153846154,
                0.6666666666666666,
                0.8,
                1.0,
            ],
        );
        assert_all_close(
            &[m.macro_precision(), m.macro_recall(), m.macro_f1()],
            &[0.8142857142857143, 0.7666666666666666, 0.7830769230769231],
        );
    }

    // Class 3 is never predicted and class 5 never occurs at all (zero_division=0 paths):
    // y_pred2 = [4 if v == 3 else v for v in y_pred]; L6 = list(range(6))
    // confusion_matrix(y_true, y_pred2, labels=L6)[3].tolist() -> [0, 1, 0, 0, 2, 0]
    // precision_recall_fscore_support(y_true, y_pred2, labels=L6, average=None, zero_division=0)
    //   p = [0.8333333333333334, 0.5714285714285714, 0.6666666666666666, 0.0, 0.6, 0.0]
    //   r = [0.8333333333333334, 0.6666666666666666, 0.6666666666666666, 0.0, 1.0, 0.0]
    //   f = [0.8333333333333334, 0.6153846153846154, 0.6666666666666666, 0.0, 0.75, 0.0]
    // ... average='macro' -> p 0.4452380952380952, r 0.5277777777777778, f 0.4775641025641026
    #[test]
    fn zero_division_counts_as_zero_like_sklearn() {
        let y_pred2: Vec<usize> = Y_PRED.iter().map(|&v| if v == 3 { 4 } else { v }).collect();
        let m = ConfusionMatrix::from_labels(&Y_TRUE, &y_pred2, 6).unwrap();
        assert_eq!(m.rows()[3], vec![0, 1, 0, 0, 2, 0]);
        assert_eq!(m.predicted(3), 0);
        assert_eq!(m.support(5), 0);
        let per =
            |f: fn(&ConfusionMatrix, usize) -> f64| (0..6).map(|c| f(&m, c)).collect::<Vec<_>>();
        assert_all_close(
            &per(ConfusionMatrix::precision),
            &[
                0.8333333333333334,
                0.5714285714285714,
                0.6666666666666666,
                0.0,
                0.6,
                0.0,
            ],
        );
        assert_all_close(
            &per(ConfusionMatrix::recall),
            &[
                0.8333333333333334,
                0.6666666666666666,
                0.6666666666666666,
                0.0,
                1.0,
                0.0,
            ],
        );
        assert_all_close(
            &per(ConfusionMatrix::f1),
            &[
                0.8333333333333334,
                0.6153846153846154,
                0.6666666666666666,
                0.0,
                0.75,
                0.0,
            ],
        );
        assert_all_close(
            &[m.macro_precision(), m.macro_recall(), m.macro_f1()],
            &[0.4452380952380952, 0.5277777777777778, 0.4775641025641026],
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            ConfusionMatrix::from_labels(&[0, 1], &[0], 2),
            Err(MetricsError::LengthMismatch {
                left_name: "y_true",
                left: 2,
                right_name: "y_pred",
                right: 1
            })
        );
        assert_eq!(
            ConfusionMatrix::from_labels(&[], &[], 2),
            Err(MetricsError::Empty("samples"))
        );
        assert_eq!(
            ConfusionMatrix::from_labels(&[0, 1], &[0, 2], 2),
            Err(MetricsError::LabelOutOfRange {
                index: 1,
                label: 2,
                n_classes: 2
            })
        );
        assert!(ConfusionMatrix::from_rows(&[vec![1, 2], vec![3]]).is_err());
        assert_eq!(
            ConfusionMatrix::from_rows(&[vec![0, 0], vec![0, 0]]),
            Err(MetricsError::Empty("samples"))
        );
    }

    #[test]
    fn json_is_the_nested_rows_and_round_trips() {
        let m = ConfusionMatrix::from_labels(&[0, 0, 1, 1, 1], &[0, 1, 1, 1, 0], 2).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "[[1,1],[1,2]]");
        let back: ConfusionMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<ConfusionMatrix>("[[1,1],[1]]").is_err());
    }
}
