//! End-to-end use of `shared::metrics` as an evaluation report would: referable-DR
//! screening from five-grade probabilities, checked against scikit-learn and statsmodels.

use serde::{Deserialize, Serialize};
use shared::metrics::{
    BinaryCounts, Calibration, ConfusionMatrix, Interval, OperatingPoint, RocCurve, auc_delong,
    expected_calibration_error, quadratic_weighted_kappa, threshold_for_sensitivity,
};

/// Grades 0–4 of 30 eyes.
const GRADES: [usize; 30] = [
    1, 1, 0, 4, 2, 3, 1, 0, 4, 2, 2, 1, 0, 3, 2, 0, 0, 0, 0, 1, 0, 1, 2, 0, 4, 3, 0, 2, 0, 0,
];
/// Predicted grades (argmax of the model's five probabilities).
const PREDICTED: [usize; 30] = [
    1, 1, 2, 4, 2, 3, 1, 0, 4, 0, 2, 2, 0, 3, 2, 0, 1, 0, 0, 1, 0, 0, 2, 0, 4, 1, 0, 1, 0, 0,
];
/// Referable score: probability mass on grades 2–4, rounded to two decimals.
const REFERABLE_SCORE: [f64; 30] = [
    0.26, 0.28, 0.67, 0.69, 0.94, 0.91, 0.3, 0.15, 0.9, 0.54, 0.92, 0.59, 0.23, 0.68, 0.65, 0.17,
    0.13, 0.35, 0.51, 0.19, 0.32, 0.6, 0.94, 0.49, 0.92, 0.54, 0.32, 0.41, 0.08, 0.23,
];

/// What an evaluation run writes as JSON.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Report {
    confusion: ConfusionMatrix,
    kappa: f64,
    auc: Interval,
    roc: RocCurve,
    operating_point: OperatingPoint,
    counts: BinaryCounts,
    sensitivity: Interval,
    specificity: Interval,
    calibration: Calibration,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9
}

// import numpy as np
// from sklearn.metrics import roc_auc_score, roc_curve, confusion_matrix
// from statsmodels.stats.proportion import proportion_confint
// y = np.array(GRADES) >= 2; s = np.array(REFERABLE_SCORE)
// roc_auc_score(y, s) -> 0.9444444444444444
// DeLong (pairwise psi definition, see shared/src/metrics/delong.rs)
//   -> lo 0.8715384648013333, hi 1.017... (clipped to 1)
// fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
// i = np.argmax(tpr >= 0.9) -> thr 0.54, tpr 0.9166666666666666, 1 - fpr 0.8333333333333334
// tn, fp, fn, tp = confusion_matrix(y, s >= 0.54).ravel() -> tp 11, fp 3, tn 15, fn 1
// proportion_confint(11, 12, method='wilson') -> (0.646120088858883, 0.9851349055950829)
// proportion_confint(15, 18, method='wilson') -> (0.6077796189608428, 0.9416342319413856)
// cohen_kappa_score(GRADES, PREDICTED, labels=range(5), weights='quadratic')
//   -> 0.8487712665406427
#[test]
fn referable_dr_screening_report() {
    let referable: Vec<bool> = GRADES.iter().map(|&g| g >= 2).collect();

    let auc = auc_delong(&referable, &REFERABLE_SCORE).unwrap();
    assert!(close(auc.estimate, 0.9444444444444444), "{auc:?}");
    assert!(close(auc.lo, 0.8715384648013333), "{auc:?}");
    assert_eq!(auc.hi, 1.0);

    let point = threshold_for_sensitivity(&referable, &REFERABLE_SCORE, 0.9).unwrap();
    assert_eq!(point.threshold, 0.54);
    assert!(close(point.sensitivity, 0.9166666666666666));
    assert!(close(point.specificity, 0.8333333333333334));

    let counts = BinaryCounts::from_scores(&referable, &REFERABLE_SCORE, point.threshold).unwrap();
    assert_eq!(
        counts,
        BinaryCounts {
            tp: 11,
            fp: 3,
            tn: 15,
            fn_: 1
        }
    );
    let sensitivity = counts.sensitivity().unwrap();
    let specificity = counts.specificity().unwrap();
    assert!(close(sensitivity.lo, 0.646120088858883) && close(sensitivity.hi, 0.9851349055950829));
    assert!(close(specificity.lo, 0.6077796189608428) && close(specificity.hi, 0.9416342319413856));

    let kappa = quadratic_weighted_kappa(&GRADES, &PREDICTED, 5).unwrap();
    assert!(close(kappa, 0.8487712665406427));

    let report = Report {
        confusion: ConfusionMatrix::from_labels(&GRADES, &PREDICTED, 5).unwrap(),
        kappa,
        auc,
        roc: RocCurve::new(&referable, &REFERABLE_SCORE).unwrap(),
        operating_point: point,
        counts,
        sensitivity,
        specificity,
        calibration: expected_calibration_error(&REFERABLE_SCORE, &referable, 10).unwrap(),
    };
    let json = serde_json::to_string_pretty(&report).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.confusion, report.confusion);
    assert_eq!(back.counts, report.counts);
    assert_eq!(back.roc.thresholds[0], f64::INFINITY);
    // Exact: the workspace enables serde_json's `float_roundtrip`, so every f64 reads back
    // bit for bit (without it 0.9444444444444444 came back as 0.9444444444444445).
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&report).unwrap()
    );
}
