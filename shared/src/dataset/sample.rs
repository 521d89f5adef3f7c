//! A labelled data set in memory: samples (image path, class, patient, subgroup attributes).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DatasetError;

/// The diabetic-retinopathy grades of APTOS and EyePACS (ICDR scale: none, mild, moderate,
/// severe, proliferative), as class names.
pub const DR_GRADES: [&str; 5] = ["0", "1", "2", "3", "4"];

/// Class names of the binary referable-DR task, index 0 and 1.
pub const REFERABLE_CLASSES: [&str; 2] = ["non_referable", "referable"];

/// Lowest DR grade that counts as referable (moderate non-proliferative DR or worse).
pub const REFERABLE_MIN_GRADE: usize = 2;

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// The image file (PNG, JPEG, TIFF, BMP or DICOM); known to exist when loaded.
    pub path: PathBuf,
    /// Index into [`Dataset::classes`].
    pub label: usize,
    /// The patient the image belongs to, when the source says; splits keep a patient together.
    pub patient_id: Option<String>,
    /// Subgroup attributes from extra manifest columns (sex, age, site, camera, …); empty
    /// values are left out.
    pub attributes: BTreeMap<String, String>,
}

/// A labelled data set: class names and samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Class names; a sample's `label` indexes this list.
    pub classes: Vec<String>,
    /// The samples, in source order (folder: by class then file name; CSV: by row).
    pub samples: Vec<Sample>,
    /// The folder or manifest it was read from.
    pub source: PathBuf,
}

impl Dataset {
    /// Number of samples per class, indexed like [`Dataset::classes`].
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.samples {
            counts[s.label] += 1;
        }
        counts
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// A copy with new class names and every label sent through `f` (old index → new index).
    ///
    /// Errors with [`DatasetError::LabelOutOfRange`] if `f` returns an index not in `classes`.
    pub fn map_labels(
        &self,
        classes: Vec<String>,
        f: impl Fn(usize) -> usize,
    ) -> Result<Dataset, DatasetError> {
        let mut samples = self.samples.clone();
        for s in &mut samples {
            let to = f(s.label);
            if to >= classes.len() {
                return Err(DatasetError::LabelOutOfRange {
                    from: s.label,
                    to,
                    classes: classes.len(),
                });
            }
            s.label = to;
        }
        Ok(Dataset {
            classes,
            samples,
            source: self.source.clone(),
        })
    }

    /// The binary referable-DR task: grades ≥ 2 become class 1 `referable`, grades 0–1
    /// class 0 `non_referable` (the international convention: moderate NPDR or worse is
    /// referred).
    ///
    /// Errors with [`DatasetError::NotDrGrades`] unless the classes are exactly [`DR_GRADES`].
    pub fn to_referable(&self) -> Result<Dataset, DatasetError> {
        if self.classes != DR_GRADES {
            return Err(DatasetError::NotDrGrades {
                dataset: self.source.clone(),
                classes: self.classes.clone(),
            });
        }
        self.map_labels(
            REFERABLE_CLASSES.iter().map(|c| c.to_string()).collect(),
            |grade| usize::from(grade >= REFERABLE_MIN_GRADE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grades(labels: &[usize]) -> Dataset {
        Dataset {
            classes: DR_GRADES.iter().map(|c| c.to_string()).collect(),
            samples: labels
                .iter()
                .enumerate()
                .map(|(i, &label)| Sample {
                    path: PathBuf::from(format!("{i}.png")),
                    label,
                    patient_id: None,
                    attributes: BTreeMap::new(),
                })
                .collect(),
            source: PathBuf::from("grades.csv"),
        }
    }

    #[test]
    fn class_counts_counts_each_class() {
        assert_eq!(
            grades(&[0, 0, 2, 4, 4, 4]).class_counts(),
            vec![2, 0, 1, 0, 3]
        );
    }

    #[test]
    fn referable_splits_at_grade_two() {
        let d = grades(&[0, 1, 2, 3, 4]).to_referable().unwrap();
        assert_eq!(d.classes, vec!["non_referable", "referable"]);
        let labels: Vec<usize> = d.samples.iter().map(|s| s.label).collect();
        assert_eq!(labels, vec![0, 0, 1, 1, 1]);
        assert_eq!(d.class_counts(), vec![2, 3]);
    }

    #[test]
    fn referable_rejects_other_classes() {
        let d = grades(&[0, 1]).to_referable().unwrap();
        let err = d.to_referable().unwrap_err();
        assert!(matches!(err, DatasetError::NotDrGrades { .. }), "{err}");
        assert!(err.to_string().starts_with("grades.csv: "), "{err}");
    }

    #[test]
    fn map_labels_rejects_out_of_range() {
        let err = grades(&[0, 3])
            .map_labels(vec!["a".into(), "b".into()], |l| l)
            .unwrap_err();
        assert!(matches!(
            err,
            DatasetError::LabelOutOfRange {
                from: 3,
                to: 3,
                classes: 2
            }
        ));
    }
}
