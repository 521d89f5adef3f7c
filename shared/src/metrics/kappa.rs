//! Quadratic weighted kappa: agreement between graded labels, penalising far-off grades.
//!
//! The headline metric of ordinal DR grading (Kaggle EyePACS, APTOS): predicting grade 4
//! for a grade-0 eye costs 16 times more than predicting grade 1.

use super::{ConfusionMatrix, MetricsError};

/// Quadratic weighted Cohen's kappa of graded labels in `0..n_classes`.
///
/// `κ = 1 − Σ wᵢⱼ Oᵢⱼ / Σ wᵢⱼ Eᵢⱼ` with weights `wᵢⱼ = (i − j)²`, observed counts `O` and
/// expected counts `E = rowsums ⊗ colsums / total`. Equal to scikit-learn's
/// `cohen_kappa_score(y_true, y_pred, labels=range(n_classes), weights="quadratic")`.
///
/// # Errors
/// Those of [`ConfusionMatrix::from_labels`], and [`MetricsError::Undefined`] when the
/// expected disagreement is zero (both raters put every sample in the same single class).
pub fn quadratic_weighted_kappa(
    y_true: &[usize],
    y_pred: &[usize],
    n_classes: usize,
) -> Result<f64, MetricsError> {
    ConfusionMatrix::from_labels(y_true, y_pred, n_classes)?.quadratic_weighted_kappa()
}

impl ConfusionMatrix {
    /// Quadratic weighted kappa of this matrix (rows true, columns predicted); see
    /// [`quadratic_weighted_kappa`].
    ///
    /// # Errors
    /// [`MetricsError::Undefined`] when the expected disagreement is zero.
    pub fn quadratic_weighted_kappa(&self) -> Result<f64, MetricsError> {
        let n = self.n_classes();
        let total = self.total() as f64;
        let rows: Vec<f64> = (0..n).map(|c| self.support(c) as f64).collect();
        let cols: Vec<f64> = (0..n).map(|c| self.predicted(c) as f64).collect();
        let (mut observed, mut expected) = (0.0, 0.0);
        for (i, row_sum) in rows.iter().enumerate() {
            for (j, col_sum) in cols.iter().enumerate() {
                let w = (i as f64 - j as f64).powi(2);
                observed += w * self.get(i, j) as f64;
                expected += w * row_sum * col_sum / total;
            }
        }
        if expected == 0.0 {
            return Err(MetricsError::Undefined("quadratic weighted kappa"));
        }
        Ok(1.0 - observed / expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testdata::{Y_PRED, Y_TRUE};

    // from sklearn.metrics import cohen_kappa_score
    // y_true = [1,1,0,4,2,3,1,0,4,2,2,1,0,3,2,0,0,0,0,1,0,1,2,0,4,3,0,2,0,0]
    // y_pred = [1,1,2,4,2,3,1,0,4,0,2,2,0,3,2,0,1,0,0,1,0,0,2,0,4,1,0,1,0,0]
    // cohen_kappa_score(y_true, y_pred, labels=list(range(5)), weights='quadratic')
    //   -> 0.8487712665406427
    // y_pred2 = [4 if v == 3 else v for v in y_pred]
    // cohen_kappa_score(y_true, y_pred2, labels=list(range(6)), weights='quadratic')
    //   -> 0.8429319371727748
    #[test]
    fn matches_sklearn_quadratic_kappa() {
        let k = quadratic_weighted_kappa(&Y_TRUE, &Y_PRED, 5).unwrap();
        assert!((k - 0.8487712665406427).abs() <= 1e-12, "{k}");
        let y_pred2: Vec<usize> = Y_PRED.iter().map(|&v| if v == 3 { 4 } else { v }).collect();
        let k = quadratic_weighted_kappa(&Y_TRUE, &y_pred2, 6).unwrap();
        assert!((k - 0.8429319371727748).abs() <= 1e-12, "{k}");
    }

    #[test]
    fn perfect_and_reversed_agreement() {
        // Perfect agreement is exactly 1; fully reversed grades on a symmetric set:
        // cohen_kappa_score([0,1,2,3,4], [4,3,2,1,0], weights='quadratic') -> -0.9999999999999996
        let y = [0, 1, 2, 3, 4];
        assert_eq!(quadratic_weighted_kappa(&y, &y, 5).unwrap(), 1.0);
        let rev = [4, 3, 2, 1, 0];
        let k = quadratic_weighted_kappa(&y, &rev, 5).unwrap();
        assert!((k + 1.0).abs() <= 1e-12, "{k}");
    }

    #[test]
    fn single_shared_class_is_undefined() {
        assert_eq!(
            quadratic_weighted_kappa(&[2, 2, 2], &[2, 2, 2], 5),
            Err(MetricsError::Undefined("quadratic weighted kappa"))
        );
    }
}
