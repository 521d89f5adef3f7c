//! One row per evaluated image, and `report/predictions.csv`: the raw material every number
//! of the report is computed from (and re-derived from by the tests).
//!
//! ```text
//! path,label,gradable,quality,score,predicted,<subgroup columns…>,p_<class 0>,…,p_<class k-1>
//! ```
//! `score` is the positive-class probability (the sum of the positive classes' softmax
//! probabilities); an ungradable image has `gradable = 0`, the gate's reasons in `quality` and
//! empty `score`, `predicted` and probabilities: it is never scored, so never "negative".
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use shared::task::argmax;

/// One evaluated image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The image file.
    pub path: PathBuf,
    /// True class index.
    pub label: usize,
    /// Softmax probabilities per class; `None` when the quality gate refused the image.
    pub probs: Option<Vec<f32>>,
    /// The gate's reasons when refused, empty otherwise.
    pub quality: String,
    /// Subgroup attributes from the manifest (sex, age band, camera, site, …).
    pub attributes: BTreeMap<String, String>,
}

impl Prediction {
    /// Whether the quality gate passed the image.
    pub fn gradable(&self) -> bool {
        self.probs.is_some()
    }

    /// The positive-class probability: the sum over `positive` classes, clamped to `[0, 1]`
    /// (rounded f32 softmax outputs can sum to 1 + a few ulps, which the metrics refuse).
    pub fn score(&self, positive: &[usize]) -> Option<f64> {
        self.probs.as_ref().map(|p| {
            let sum: f64 = positive.iter().map(|&c| p[c] as f64).sum();
            sum.clamp(0.0, 1.0)
        })
    }

    /// The arg-max class.
    pub fn predicted(&self) -> Option<usize> {
        self.probs.as_deref().map(argmax)
    }
}

/// Writes `preds` as CSV to `path`, with one column per attribute in `columns` and one
/// probability column per class.
pub fn write_csv(
    path: &Path,
    preds: &[Prediction],
    classes: &[String],
    positive: &[usize],
    columns: &[String],
) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut header: Vec<String> = ["path", "label", "gradable", "quality", "score", "predicted"]
        .map(String::from)
        .to_vec();
    header.extend(columns.iter().cloned());
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header)
        .with_context(|| format!("writing {}", path.display()))?;
    for p in preds {
        let mut row = vec![
            p.path.display().to_string(),
            p.label.to_string(),
            u8::from(p.gradable()).to_string(),
            p.quality.clone(),
            p.score(positive).map_or(String::new(), |s| s.to_string()),
            p.predicted().map_or(String::new(), |c| c.to_string()),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| p.attributes.get(c).cloned().unwrap_or_default()),
        );
        match &p.probs {
            Some(probs) => row.extend(probs.iter().map(|v| v.to_string())),
            None => row.extend(classes.iter().map(|_| String::new())),
        }
        w.write_record(&row)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Columns not treated as subgroups: identifiers and the generator's own gradability flag.
const NOT_SUBGROUPS: [&str; 4] = ["patient_id", "gradable", "id_code", "eye"];

/// Most distinct values a column may take to be a subgroup column (more: an identifier).
pub const MAX_SUBGROUP_LEVELS: usize = 12;

/// The subgroup columns of `preds`: every attribute with 2 to [`MAX_SUBGROUP_LEVELS`] distinct
/// values, except identifiers, sorted by name.
pub fn subgroup_columns(preds: &[Prediction]) -> Vec<String> {
    let mut levels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in preds {
        for (k, v) in &p.attributes {
            levels.entry(k).or_default().insert(v);
        }
    }
    levels
        .into_iter()
        .filter(|(k, v)| !NOT_SUBGROUPS.contains(k) && (2..=MAX_SUBGROUP_LEVELS).contains(&v.len()))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Every attribute column of `preds`, sorted (what predictions.csv carries).
pub fn attribute_columns(preds: &[Prediction]) -> Vec<String> {
    let set: BTreeSet<&String> = preds.iter().flat_map(|p| p.attributes.keys()).collect();
    set.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(label: usize, probs: Option<Vec<f32>>, attrs: &[(&str, &str)]) -> Prediction {
        Prediction {
            path: PathBuf::from(format!("img{label}.png")),
            label,
            quality: if probs.is_none() {
                "too dark".into()
            } else {
                String::new()
            },
            probs,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn score_of_rounded_probabilities_stays_a_probability() {
        // 0.5 and the next f32 above 0.5 sum to 1.0000000596 in f64.
        let p = pred(1, Some(vec![0.5, 0.500_000_06]), &[]);
        assert_eq!(p.score(&[0, 1]), Some(1.0));
        assert!((p.score(&[1]).unwrap() - 0.500_000_06).abs() < 1e-9);
    }

    #[test]
    fn score_sums_positive_classes_and_ungradable_has_none() {
        let p = pred(2, Some(vec![0.1, 0.2, 0.3, 0.25, 0.15]), &[]);
        assert!((p.score(&[2, 3, 4]).unwrap() - 0.7).abs() < 1e-6);
        assert_eq!(p.predicted(), Some(2));
        let u = pred(0, None, &[]);
        assert_eq!(
            (u.score(&[1]), u.predicted(), u.gradable()),
            (None, None, false)
        );
    }

    #[test]
    fn subgroup_columns_skip_identifiers_and_constant_columns() {
        let preds: Vec<Prediction> = (0..20)
            .map(|i| {
                pred(
                    0,
                    Some(vec![1.0, 0.0]),
                    &[
                        ("sex", if i % 2 == 0 { "F" } else { "M" }),
                        ("camera", "cam_a"),
                        ("patient_id", "P1"),
                        ("gradable", if i == 0 { "0" } else { "1" }),
                        ("scan", format!("s{i}").as_str()),
                    ],
                )
            })
            .collect();
        assert_eq!(subgroup_columns(&preds), ["sex"]);
        assert_eq!(
            attribute_columns(&preds),
            ["camera", "gradable", "patient_id", "scan", "sex"]
        );
    }

    #[test]
    fn csv_has_one_row_per_image_and_blank_scores_for_ungradable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let preds = vec![
            pred(1, Some(vec![0.25, 0.75]), &[("sex", "F")]),
            pred(0, None, &[("sex", "M")]),
        ];
        let classes = vec!["no".to_string(), "yes".to_string()];
        write_csv(&path, &preds, &classes, &[1], &["sex".into()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "path,label,gradable,quality,score,predicted,sex,p_no,p_yes",
                "img1.png,1,1,,0.75,1,F,0.25,0.75",
                "img0.png,0,0,too dark,,,M,,",
            ]
        );
    }
}
