//! What the model predicts, and the headline metric that early stopping and the quantization
//! gate watch: quadratic weighted kappa for DR grading, ROC AUC for a binary task, accuracy
//! otherwise. Stored in the device bundle, so it lives here with the metrics.
use crate::metrics::{ConfusionMatrix, MetricsError, auc, quadratic_weighted_kappa};
use serde::{Deserialize, Serialize};

/// The prediction task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Five DR grades 0–4 (ICDR), ordinal: headline QWK.
    Grade,
    /// Referable DR (grade ≥ 2) vs not: headline AUC of the referable probability.
    Referable,
    /// Any other set of classes (folders, generic CSV): headline accuracy.
    Classes,
}

/// The headline metric's value and name.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// `qwk`, `auc` or `accuracy`.
    pub name: &'static str,
    /// Its value; higher is better.
    pub value: f64,
}

impl Task {
    /// Computes the headline metric from softmax probabilities (row-major `[n, classes]`).
    pub fn headline(
        self,
        labels: &[usize],
        probs: &[f32],
        classes: usize,
    ) -> Result<Headline, MetricsError> {
        let predicted: Vec<usize> = probs.chunks(classes).map(argmax).collect();
        match self {
            Task::Grade => Ok(Headline {
                name: "qwk",
                value: quadratic_weighted_kappa(labels, &predicted, classes)?,
            }),
            Task::Referable => {
                let positive: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
                let scores: Vec<f64> = probs.chunks(classes).map(|p| p[1] as f64).collect();
                Ok(Headline {
                    name: "auc",
                    value: auc(&positive, &scores)?,
                })
            }
            Task::Classes => {
                let cm = ConfusionMatrix::from_labels(labels, &predicted, classes)?;
                Ok(Headline {
                    name: "accuracy",
                    value: cm.accuracy(),
                })
            }
        }
    }
}

impl Task {
    /// Every task, for help texts.
    pub const ALL: [Task; 3] = [Task::Grade, Task::Referable, Task::Classes];

    /// The command-line / JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Task::Grade => "grade",
            Task::Referable => "referable",
            Task::Classes => "classes",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown task `{s}` (grade, referable, classes)"))
    }
}

/// Softmax of one row of logits, stable for large values (the maximum is subtracted first).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Index of the largest value (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_hand_values_and_survives_large_logits() {
        // e^0 / (e^0 + e^1 + e^2) = 0.09003057, then 0.24472847, 0.66524096 (numpy).
        let p = softmax(&[0.0, 1.0, 2.0]);
        for (a, b) in p.iter().zip([0.090_030_57, 0.244_728_47, 0.665_240_96]) {
            assert!((a - b).abs() < 1e-7, "{p:?}");
        }
        let p = softmax(&[1000.0, 1000.0]);
        assert_eq!(p, vec![0.5, 0.5]);
    }

    #[test]
    fn headlines_match_scikit_learn() {
        // from sklearn.metrics import cohen_kappa_score, roc_auc_score
        // cohen_kappa_score([0,1,2,3,4,2], [0,1,1,3,4,2], weights="quadratic")  -> 0.9523809523809523 (sklearn 1.9.1)
        let probs = |preds: &[usize], k: usize| -> Vec<f32> {
            preds
                .iter()
                .flat_map(|&p| (0..k).map(move |c| if c == p { 0.9 } else { 0.1 / (k - 1) as f32 }))
                .collect()
        };
        let h = Task::Grade
            .headline(&[0, 1, 2, 3, 4, 2], &probs(&[0, 1, 1, 3, 4, 2], 5), 5)
            .unwrap();
        assert_eq!(h.name, "qwk");
        assert!((h.value - 0.952_380_952_380_952_3).abs() < 1e-12, "{h:?}");
        // roc_auc_score([0,0,1,1,1], [0.1,0.6,0.4,0.8,0.9]) -> 0.8333333333333333
        let p: Vec<f32> = [0.1f32, 0.6, 0.4, 0.8, 0.9]
            .iter()
            .flat_map(|&s| [1.0 - s, s])
            .collect();
        let h = Task::Referable.headline(&[0, 0, 1, 1, 1], &p, 2).unwrap();
        assert!((h.value - 0.833_333_333_333_333_3).abs() < 1e-6, "{h:?}");
        let h = Task::Classes
            .headline(&[0, 1, 1], &[0.7, 0.3, 0.2, 0.8, 0.6, 0.4], 2)
            .unwrap();
        assert!((h.value - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!("referable".parse::<Task>(), Ok(Task::Referable));
        assert!(
            "dr".parse::<Task>()
                .unwrap_err()
                .contains("unknown task `dr`")
        );
    }
}
