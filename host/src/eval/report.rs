//! `report/metrics.json`: every number of the evaluation report, computed from the
//! predictions alone (so a test can re-derive each one from `predictions.csv`).
//!
//! **The operating point** (`operating_point`) is chosen on the *validation* split — the
//! highest threshold whose validation sensitivity reaches `target_sensitivity` — and then
//! *measured* on the evaluated images. `operating_point.threshold` is the field a bundle
//! stores: an image is referred iff its positive score (`score` in predictions.csv, the sum
//! of the positive classes' probabilities) is `>= threshold`.
use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};
use shared::metrics::{
    BinaryCounts, Calibration, ConfusionMatrix, Interval, RocCurve, auc_delong,
    expected_calibration_error, threshold_for_sensitivity, wilson,
};
use shared::task::Task;

use super::predictions::{Prediction, subgroup_columns};
use super::subgroup::{self, SubgroupTable};

/// Reliability-diagram bins.
pub const CALIBRATION_BINS: usize = 10;

/// What the evaluated model is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The run directory.
    pub run_dir: String,
    /// EfficientNet variant.
    pub variant: String,
    /// Task.
    pub task: Task,
    /// Class names.
    pub classes: Vec<String>,
    /// Classes counted as positive (referable) for the binary screening metrics.
    pub positive_classes: Vec<String>,
    /// Input side in pixels.
    pub img_size: u32,
    /// SHA-256 of the weights' values (as `host train` records it in metrics.json).
    pub weights_sha256: String,
    /// Whether the model was trained on the synthetic generator.
    pub synthetic_training_data: bool,
    /// The ONNX file scored with tract, when not the run's burn model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<OnnxInfo>,
}

/// An ONNX export scored instead of the burn model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnnxInfo {
    /// The file.
    pub file: String,
    /// Its SHA-256: a bundle uses this report's threshold only for exactly this file.
    pub sha256: String,
    /// `host quantize`'s record (JSON) for an int8 file.
    pub quantization: Option<String>,
}

/// Which images were evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Manifest or folder.
    pub source: String,
    /// `test split of the run` or `all images of --data`.
    pub selection: String,
}

/// Share of images the quality gate judged gradable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Imageability {
    /// Images evaluated.
    pub total: usize,
    /// Gradable images (the only ones scored).
    pub gradable: usize,
    /// Images refused by the gate: excluded from every other metric, and counted here.
    pub ungradable: usize,
    /// `gradable / total` with its Wilson interval.
    pub share: Interval,
}

/// Rates on the validation split where the threshold was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationPoint {
    /// Gradable validation images.
    pub n: usize,
    /// Validation sensitivity at the threshold.
    pub sensitivity: f64,
    /// Validation specificity at the threshold.
    pub specificity: f64,
}

/// Rates on the evaluated images at the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestPoint {
    /// The four cells.
    pub counts: BinaryCounts,
    /// Sensitivity (Wilson 95 %).
    pub sensitivity: Interval,
    /// Specificity (Wilson 95 %).
    pub specificity: Interval,
    /// Positive predictive value; `None` when nothing was called positive.
    pub ppv: Option<Interval>,
    /// Negative predictive value; `None` when nothing was called negative.
    pub npv: Option<Interval>,
}

/// The pre-set operating point and what it gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingPointReport {
    /// The sensitivity asked for.
    pub target_sensitivity: f64,
    /// Refer iff score >= threshold. Chosen on validation, never on the evaluated images.
    pub threshold: f64,
    /// Always `validation`.
    pub chosen_on: String,
    /// Rates where it was chosen.
    pub validation: ValidationPoint,
    /// Rates measured on the evaluated images.
    pub test: TestPoint,
}

/// ROC curve and AUC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocReport {
    /// AUC with its DeLong 95 % interval.
    pub auc: Interval,
    /// The full curve (every threshold).
    pub curve: RocCurve,
}

/// Precision, recall and F1 of one class (arg-max predictions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// Gradable images of this class.
    pub support: usize,
    /// Precision (0 when never predicted).
    pub precision: f64,
    /// Recall (0 without support).
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

/// Subgroup tables and the margin they were flagged with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subgroups {
    /// Largest acceptable sensitivity gap.
    pub margin: f64,
    /// One table per subgroup column.
    pub tables: Vec<SubgroupTable>,
}

/// A Grad-CAM montage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Montage {
    /// `true_positive`, `false_negative` or `false_positive`.
    pub kind: String,
    /// PNG file name in the report folder; `None` when the kind had no image.
    pub file: Option<String>,
    /// The images shown, in order.
    pub images: Vec<String>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `fovea-eval/1`.
    pub schema: String,
    /// The model.
    pub model: ModelInfo,
    /// The data.
    pub data: DataInfo,
    /// Gradable share.
    pub imageability: Imageability,
    /// Threshold chosen on validation, measured here.
    pub operating_point: OperatingPointReport,
    /// ROC.
    pub roc: RocReport,
    /// Confusion matrix of arg-max predictions, rows true class, columns predicted.
    pub confusion: Vec<Vec<usize>>,
    /// Accuracy of arg-max predictions.
    pub accuracy: f64,
    /// Macro F1.
    pub macro_f1: f64,
    /// Per class.
    pub per_class: Vec<ClassMetrics>,
    /// Quadratic weighted kappa (grading task only).
    pub qwk: Option<f64>,
    /// Calibration of the positive score against the positive label.
    pub calibration: Calibration,
    /// Subgroups.
    pub subgroups: Subgroups,
    /// Grad-CAM montages (filled in after the numbers).
    pub gradcam: Vec<Montage>,
}

/// Schema name in `metrics.json`.
pub const SCHEMA: &str = "fovea-eval/1";

/// The classes counted as positive (referable) for a task: grades ≥ 2 for grading, class 1
/// for the referable task and any two-class task.
pub fn positive_classes(task: Task, classes: usize) -> anyhow::Result<Vec<usize>> {
    match task {
        Task::Grade => Ok((shared::dataset::REFERABLE_MIN_GRADE..classes).collect()),
        Task::Referable => Ok(vec![1]),
        Task::Classes if classes == 2 => Ok(vec![1]),
        Task::Classes => anyhow::bail!(
            "the screening report needs a positive class: task `classes` with {classes} classes \
             has none (use a grade, referable or two-class model)"
        ),
    }
}

/// Inputs of [`compute`] besides the predictions.
pub struct Settings<'a> {
    /// The model.
    pub model: ModelInfo,
    /// The data.
    pub data: DataInfo,
    /// Positive class indices.
    pub positive: &'a [usize],
    /// Target sensitivity of the operating point.
    pub target_sensitivity: f64,
    /// Subgroup margin.
    pub margin: f64,
}

/// Computes every number from the validation predictions (threshold) and the evaluated ones.
pub fn compute(s: Settings, val: &[Prediction], test: &[Prediction]) -> anyhow::Result<Report> {
    ensure!(
        s.target_sensitivity > 0.0 && s.target_sensitivity <= 1.0,
        "--target-sensitivity must be in (0, 1] (got {})",
        s.target_sensitivity
    );
    ensure!(
        (0.0..1.0).contains(&s.margin),
        "--margin must be in [0, 1) (got {})",
        s.margin
    );
    let classes = s.model.classes.len();
    let is_pos = |l: usize| s.positive.contains(&l);
    let (val_labels, val_scores) = binary(val, s.positive);
    let op = threshold_for_sensitivity(&val_labels, &val_scores, s.target_sensitivity)
        .context("choosing the threshold on the validation split")?;

    let gradable: Vec<&Prediction> = test.iter().filter(|p| p.gradable()).collect();
    let total = test.len();
    ensure!(total > 0, "no image to evaluate");
    let imageability = Imageability {
        total,
        gradable: gradable.len(),
        ungradable: total - gradable.len(),
        share: wilson(gradable.len(), total)?,
    };
    ensure!(
        !gradable.is_empty(),
        "every one of the {total} images was ungradable: nothing to score"
    );
    let (labels, scores) = binary(test, s.positive);
    let counts = BinaryCounts::from_scores(&labels, &scores, op.threshold)?;
    let test_point = TestPoint {
        counts,
        sensitivity: counts
            .sensitivity()
            .context("sensitivity: no positive among the evaluated images")?,
        specificity: counts
            .specificity()
            .context("specificity: no negative among the evaluated images")?,
        ppv: counts.ppv().ok(),
        npv: counts.npv().ok(),
    };
    let roc = RocReport {
        auc: auc_delong(&labels, &scores).context("AUC")?,
        curve: RocCurve::new(&labels, &scores)?,
    };
    let truth: Vec<usize> = gradable.iter().map(|p| p.label).collect();
    let predicted: Vec<usize> = gradable
        .iter()
        .map(|p| p.predicted().expect("gradable"))
        .collect();
    let cm = ConfusionMatrix::from_labels(&truth, &predicted, classes)?;
    let per_class = (0..classes)
        .map(|c| ClassMetrics {
            class: s.model.classes[c].clone(),
            support: cm.support(c),
            precision: cm.precision(c),
            recall: cm.recall(c),
            f1: cm.f1(c),
        })
        .collect();
    let qwk = match s.model.task {
        Task::Grade => Some(cm.quadratic_weighted_kappa()?),
        _ => None,
    };
    let calibration = expected_calibration_error(
        &scores,
        &truth.iter().map(|&l| is_pos(l)).collect::<Vec<_>>(),
        CALIBRATION_BINS,
    )?;
    let gradable_owned: Vec<Prediction> = gradable.iter().map(|p| (*p).clone()).collect();
    let tables = subgroup_columns(&gradable_owned)
        .into_iter()
        .map(|column| {
            let values: Vec<Option<&str>> = gradable
                .iter()
                .map(|p| p.attributes.get(&column).map(String::as_str))
                .collect();
            subgroup::table(
                &column,
                &values,
                &labels,
                &scores,
                op.threshold,
                &test_point.sensitivity,
                s.margin,
            )
        })
        .collect();
    Ok(Report {
        schema: SCHEMA.into(),
        model: s.model,
        data: s.data,
        imageability,
        operating_point: OperatingPointReport {
            target_sensitivity: s.target_sensitivity,
            threshold: op.threshold,
            chosen_on: "validation".into(),
            validation: ValidationPoint {
                n: val_labels.len(),
                sensitivity: op.sensitivity,
                specificity: op.specificity,
            },
            test: test_point,
        },
        roc,
        confusion: cm.rows(),
        accuracy: cm.accuracy(),
        macro_f1: cm.macro_f1(),
        per_class,
        qwk,
        calibration,
        subgroups: Subgroups {
            margin: s.margin,
            tables,
        },
        gradcam: Vec::new(),
    })
}

/// Positive labels and scores of the gradable predictions, in order.
pub fn binary(preds: &[Prediction], positive: &[usize]) -> (Vec<bool>, Vec<f64>) {
    preds
        .iter()
        .filter_map(|p| Some((positive.contains(&p.label), p.score(positive)?)))
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn settings(positive: &[usize]) -> Settings<'_> {
        Settings {
            model: ModelInfo {
                run_dir: "run".into(),
                variant: "lite0".into(),
                task: Task::Referable,
                classes: vec!["no".into(), "yes".into()],
                positive_classes: vec!["yes".into()],
                img_size: 64,
                weights_sha256: "00".into(),
                onnx: None,
                synthetic_training_data: true,
            },
            data: DataInfo {
                source: "x.csv".into(),
                selection: "test".into(),
            },
            positive,
            target_sensitivity: 0.9,
            margin: 0.05,
        }
    }

    /// Binary predictions `p(yes) = score`, camera `cam` (ungradable when `score` is None).
    fn pred(label: usize, score: Option<f32>, cam: &str) -> Prediction {
        Prediction {
            path: PathBuf::from("x.png"),
            label,
            probs: score.map(|s| vec![1.0 - s, s]),
            quality: String::new(),
            attributes: BTreeMap::from([("camera".to_string(), cam.to_string())]),
        }
    }

    /// A planted bias at the prediction level: camera `cam_b` gives positives the scores of
    /// negatives (its lesions are invisible to the model), the others separate perfectly.
    fn cohort(biased: bool) -> Vec<Prediction> {
        let mut v = Vec::new();
        for i in 0..300 {
            let cam = ["cam_a", "cam_b", "cam_c"][i % 3];
            let label = usize::from(i % 2 == 0);
            let jitter = (i % 7) as f32 / 100.0;
            let s = match (label, cam) {
                (1, "cam_b") if biased && i % 4 == 0 => 0.1 + jitter,
                (1, _) => 0.8 + jitter,
                _ => 0.2 + jitter,
            };
            v.push(pred(label, Some(s), cam));
        }
        v
    }

    #[test]
    fn threshold_comes_from_validation_and_ungradable_images_are_only_counted() {
        let val = vec![
            pred(1, Some(0.9), "a"),
            pred(1, Some(0.6), "a"),
            pred(0, Some(0.5), "a"),
            pred(0, Some(0.1), "a"),
        ];
        let mut test = vec![
            pred(1, Some(0.7), "a"),
            pred(1, Some(0.55), "a"),
            pred(0, Some(0.65), "b"),
            pred(0, Some(0.2), "b"),
        ];
        test.push(pred(1, None, "b"));
        let r = compute(settings(&[1]), &val, &test).unwrap();
        // Validation: the highest threshold with sensitivity >= 0.9 is 0.6.
        assert_eq!(r.operating_point.threshold, 0.6f32 as f64);
        assert_eq!(r.operating_point.validation.sensitivity, 1.0);
        assert_eq!(r.operating_point.validation.specificity, 1.0);
        // Measured on test at 0.6: 0.7 TP, 0.55 FN, 0.65 FP, 0.2 TN; the ungradable one is
        // not a negative.
        assert_eq!(
            r.operating_point.test.counts,
            BinaryCounts {
                tp: 1,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert_eq!(
            (
                r.imageability.total,
                r.imageability.gradable,
                r.imageability.ungradable
            ),
            (5, 4, 1)
        );
        assert_eq!(r.imageability.share.estimate, 0.8);
        assert_eq!(r.roc.auc.estimate, 0.75);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![0, 2]]);
        assert_eq!(r.qwk, None);
    }

    #[test]
    fn planted_camera_bias_is_flagged_and_an_unbiased_set_is_not() {
        let val = cohort(false);
        let r = compute(settings(&[1]), &val, &cohort(true)).unwrap();
        let cams = &r.subgroups.tables[0];
        assert_eq!(cams.column, "camera");
        let flagged: Vec<&str> = cams
            .rows
            .iter()
            .filter(|r| r.flagged)
            .map(|r| r.value.as_str())
            .collect();
        assert_eq!(flagged, ["cam_b"], "{cams:#?}");
        let r = compute(settings(&[1]), &val, &cohort(false)).unwrap();
        assert!(r.subgroups.tables[0].rows.iter().all(|r| !r.flagged));
    }

    #[test]
    fn bad_settings_and_a_multiclass_task_are_refused() {
        let mut s = settings(&[1]);
        s.target_sensitivity = 1.5;
        let e = compute(s, &cohort(false), &cohort(false)).unwrap_err();
        assert!(e.to_string().contains("--target-sensitivity"), "{e}");
        let e = positive_classes(Task::Classes, 3).unwrap_err();
        assert!(e.to_string().contains("3 classes"), "{e}");
        assert_eq!(positive_classes(Task::Grade, 5).unwrap(), [2, 3, 4]);
    }
}
