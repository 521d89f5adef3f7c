//! CSV manifests: APTOS (`id_code,diagnosis`), EyePACS (`image,level`) and generic
//! (`path,label`), told apart by the header; extra columns become subgroup attributes.
//!
//! Image lookup per format (images are checked to exist, never decoded):
//!
//! | format  | image column | label column | looked up in (unless `images_dir` is given) |
//! |---------|--------------|--------------|---------------------------------------------|
//! | APTOS   | `id_code`    | `diagnosis`  | `<csv dir>/train_images/`, then `<csv dir>/` |
//! | EyePACS | `image`      | `level`      | `<csv dir>/train/`, then `<csv dir>/`        |
//! | generic | `path`       | `label`      | relative to `<csv dir>/`, or absolute        |
//!
//! APTOS and EyePACS name images by stem; the extension is found by trying
//! [`STEM_EXTENSIONS`] (APTOS ships PNG, EyePACS JPEG, exports may be DICOM).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::folder::has_image_extension;
use super::sample::DR_GRADES;
use super::{Dataset, DatasetError, Sample};

/// Extensions tried, in order, for APTOS/EyePACS image stems (then the same upper-cased).
pub const STEM_EXTENSIONS: [&str; 7] = ["png", "jpeg", "jpg", "tif", "tiff", "bmp", "dcm"];

/// Column that, when present, also fills [`Sample::patient_id`].
pub const PATIENT_ID_COLUMN: &str = "patient_id";

/// The manifest layouts [`Dataset::from_csv`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestFormat {
    /// Kaggle APTOS 2019: `id_code,diagnosis`, grades 0–4, images `<id_code>.png`.
    Aptos,
    /// Kaggle EyePACS 2015: `image,level`, grades 0–4, images `<image>.jpeg`.
    EyePacs,
    /// `path,label[,…]`: any image path and any label strings.
    Generic,
}

impl ManifestFormat {
    const ALL: [ManifestFormat; 3] = [Self::Aptos, Self::EyePacs, Self::Generic];

    /// Human-readable name, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aptos => "APTOS",
            Self::EyePacs => "EyePACS",
            Self::Generic => "generic",
        }
    }

    /// The (image, label) key column names.
    pub fn key_columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Aptos => ("id_code", "diagnosis"),
            Self::EyePacs => ("image", "level"),
            Self::Generic => ("path", "label"),
        }
    }

    /// Sub-folders of the CSV's folder searched for images, in order, before the folder itself.
    fn default_subdirs(self) -> &'static [&'static str] {
        match self {
            Self::Aptos => &["train_images"],
            Self::EyePacs => &["train"],
            Self::Generic => &[],
        }
    }

    /// The format whose two key columns are both in `header` (compared case-insensitively,
    /// first match in the order APTOS, EyePACS, generic); `file` names the CSV in errors.
    ///
    /// Errors: [`DatasetError::MissingColumn`] if a format's image or label column is there
    /// without the other, else [`DatasetError::UnknownFormat`].
    pub fn detect(header: &[&str], file: &Path) -> Result<ManifestFormat, DatasetError> {
        let has = |name: &str| header.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
        if let Some(f) = Self::ALL.into_iter().find(|f| {
            let (i, l) = f.key_columns();
            has(i) && has(l)
        }) {
            return Ok(f);
        }
        for f in Self::ALL {
            let (i, l) = f.key_columns();
            if has(i) || has(l) {
                return Err(DatasetError::MissingColumn {
                    file: file.to_path_buf(),
                    format: f.name(),
                    column: if has(i) { l } else { i },
                });
            }
        }
        Err(DatasetError::UnknownFormat {
            file: file.to_path_buf(),
            header: header.iter().map(|h| h.to_string()).collect(),
        })
    }
}

/// How to read a CSV manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Folder holding the images, instead of the per-format defaults next to the CSV.
    pub images_dir: Option<PathBuf>,
    /// Fixed class list for a generic manifest (labels outside it are an error); `None` takes
    /// the distinct labels. APTOS/EyePACS always use [`DR_GRADES`]; setting it there is an error.
    pub classes: Option<Vec<String>>,
    /// Accept classes with no sample (e.g. a small test manifest without grade 4). Off by
    /// default: an empty class is reported as an error.
    pub allow_empty_classes: bool,
}

/// One parsed row before class indices are known.
struct Row {
    line: u64,
    label: String,
    path: PathBuf,
    patient_id: Option<String>,
    attributes: BTreeMap<String, String>,
}

impl Dataset {
    /// Reads a CSV manifest, detecting its format from the header (see the module docs).
    ///
    /// Every non-key column is kept in [`Sample::attributes`] (empty values left out); a
    /// `patient_id` column also fills [`Sample::patient_id`]. For APTOS/EyePACS the classes are
    /// [`DR_GRADES`] and labels must be the integers 0–4; for a generic manifest they are
    /// `opts.classes`, or else the distinct labels sorted (numerically when all are integers).
    ///
    /// Errors name the CSV and, for row problems, the 1-based line: unreadable file, empty
    /// file, unknown header or missing key column, wrong field count or bad UTF-8, empty or
    /// unknown label, missing image, no rows, or a class without samples (unless allowed).
    pub fn from_csv(
        csv_path: impl AsRef<Path>,
        opts: &CsvOptions,
    ) -> Result<Dataset, DatasetError> {
        let file = csv_path.as_ref();
        let bytes = std::fs::read(file).map_err(|cause| DatasetError::Io {
            path: file.to_path_buf(),
            cause,
        })?;
        let lines = LineIndex::new(&bytes);
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes.as_slice());
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_error(file, e, &lines))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(DatasetError::EmptyManifest {
                file: file.to_path_buf(),
            });
        }
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        let format = ManifestFormat::detect(&names, file)?;
        check_unique(&header, file)?;
        if format != ManifestFormat::Generic && opts.classes.is_some() {
            return Err(DatasetError::BadOptions {
                file: file.to_path_buf(),
                message: format!(
                    "a fixed class list applies to generic manifests only; {} uses the DR grades 0-4",
                    format.name()
                ),
            });
        }
        let (image_key, label_key) = format.key_columns();
        let col = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (image_col, label_col) = (
            col(image_key).expect("detect found the image column"),
            col(label_key).expect("detect found the label column"),
        );
        let patient_col = col(PATIENT_ID_COLUMN);
        let csv_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let search_dirs: Vec<PathBuf> = match &opts.images_dir {
            Some(d) => vec![d.clone()],
            None => format
                .default_subdirs()
                .iter()
                .map(|s| csv_dir.join(s))
                .chain([csv_dir.clone()])
                .collect(),
        };

        // Known up front unless a generic manifest takes its classes from the labels.
        let fixed_classes: Option<Vec<String>> = match (format, &opts.classes) {
            (ManifestFormat::Generic, c) => c.clone(),
            _ => Some(DR_GRADES.iter().map(|g| g.to_string()).collect()),
        };
        let unknown = |line: u64, label: &str, expected: &[String]| DatasetError::UnknownLabel {
            file: file.to_path_buf(),
            line,
            label: label.to_string(),
            expected: expected.to_vec(),
        };

        let mut rows = Vec::new();
        for record in rdr.records() {
            let record = record.map_err(|e| csv_error(file, e, &lines))?;
            let line = lines.line_of(record.position());
            let label = record[label_col].to_string();
            if label.is_empty() {
                return Err(malformed(file, line, format!("empty `{label_key}`")));
            }
            if let Some(classes) = &fixed_classes
                && class_index(classes, &label, format).is_none()
            {
                return Err(unknown(line, &label, classes));
            }
            let image = &record[image_col];
            if image.is_empty() {
                return Err(malformed(file, line, format!("empty `{image_key}`")));
            }
            let path = match format {
                ManifestFormat::Generic => resolve_path(image, &search_dirs[0]),
                _ => resolve_stem(image, &search_dirs),
            }
            .map_err(|tried| DatasetError::MissingImage {
                file: file.to_path_buf(),
                line,
                image: image.to_string(),
                tried,
            })?;
            let attributes = header
                .iter()
                .enumerate()
                .filter(|&(c, h)| c != image_col && c != label_col && !h.is_empty())
                .filter(|&(c, _)| !record[c].is_empty())
                .map(|(c, h)| (h.clone(), record[c].to_string()))
                .collect();
            let patient_id = patient_col
                .map(|c| record[c].to_string())
                .filter(|p| !p.is_empty());
            rows.push(Row {
                line,
                label,
                path,
                patient_id,
                attributes,
            });
        }
        if rows.is_empty() {
            return Err(DatasetError::NoSamples {
                file: file.to_path_buf(),
            });
        }

        let classes = fixed_classes.unwrap_or_else(|| sorted_labels(&rows));
        let mut samples = Vec::with_capacity(rows.len());
        for row in rows {
            let label = class_index(&classes, &row.label, format)
                .ok_or_else(|| unknown(row.line, &row.label, &classes))?;
            samples.push(Sample {
                path: row.path,
                label,
                patient_id: row.patient_id,
                attributes: row.attributes,
            });
        }
        let dataset = Dataset {
            classes,
            samples,
            source: file.to_path_buf(),
        };
        let empty = dataset.class_counts().iter().position(|&n| n == 0);
        match empty {
            Some(c) if !opts.allow_empty_classes => Err(DatasetError::EmptyClass {
                file: file.to_path_buf(),
                class: dataset.classes[c].clone(),
            }),
            _ => Ok(dataset),
        }
    }
}

fn malformed(file: &Path, line: u64, message: String) -> DatasetError {
    DatasetError::MalformedRow {
        file: file.to_path_buf(),
        line,
        message,
    }
}

/// Turns a csv error into one naming the file and line.
fn csv_error(file: &Path, err: csv::Error, lines: &LineIndex) -> DatasetError {
    let line = lines.line_of(err.position());
    match err.into_kind() {
        csv::ErrorKind::Io(cause) => DatasetError::Io {
            path: file.to_path_buf(),
            cause,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => malformed(
            file,
            line,
            format!("{len} field(s), but the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { err, .. } => malformed(file, line, format!("invalid UTF-8: {err}")),
        other => malformed(file, line, format!("{other:?}")),
    }
}

/// Byte offset → 1-based line number. The csv crate's own line count skips blank lines, and
/// its record offset points at any blank lines before the record, either of which would send a
/// user to the wrong line; so lines are counted from the bytes.
struct LineIndex<'a> {
    bytes: &'a [u8],
    /// Byte offsets of every `\n`.
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let newlines = bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex { bytes, newlines }
    }

    /// The line where the record read from `pos` starts (line 1 when unknown).
    fn line_of(&self, pos: Option<&csv::Position>) -> u64 {
        let mut byte = pos.map_or(0, |p| p.byte() as usize);
        while matches!(self.bytes.get(byte), Some(b'\n' | b'\r')) {
            byte += 1;
        }
        self.newlines.partition_point(|&nl| nl < byte) as u64 + 1
    }
}

fn check_unique(header: &[String], file: &Path) -> Result<(), DatasetError> {
    let mut seen = BTreeSet::new();
    for h in header {
        if !seen.insert(h.to_ascii_lowercase()) {
            return Err(malformed(file, 1, format!("duplicate column `{h}`")));
        }
    }
    Ok(())
}

/// A generic manifest's path: absolute, or relative to `base`. `Err` holds the path tried.
fn resolve_path(value: &str, base: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let p = Path::new(value);
    let path = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(vec![path])
    }
}

/// An APTOS/EyePACS image: `<dir>/<stem>.<ext>` for the first dir and extension that exists
/// (or `<dir>/<stem>` when the stem already has an image extension). `Err` lists the patterns
/// tried, one per folder.
fn resolve_stem(stem: &str, dirs: &[PathBuf]) -> Result<PathBuf, Vec<PathBuf>> {
    let with_ext = has_image_extension(Path::new(stem));
    for dir in dirs {
        if with_ext && dir.join(stem).is_file() {
            return Ok(dir.join(stem));
        }
        for ext in STEM_EXTENSIONS {
            for ext in [ext.to_string(), ext.to_ascii_uppercase()] {
                let path = dir.join(format!("{stem}.{ext}"));
                if path.is_file() {
                    return Ok(path);
                }
            }
        }
    }
    let pattern = format!("{stem}.{{{}}}", STEM_EXTENSIONS.join(","));
    Err(dirs.iter().map(|d| d.join(&pattern)).collect())
}

/// Distinct labels, sorted numerically if all are integers, else as strings.
fn sorted_labels(rows: &[Row]) -> Vec<String> {
    let distinct: BTreeSet<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let mut labels: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    let numbers: Option<Vec<i64>> = labels.iter().map(|l| l.parse().ok()).collect();
    if let Some(numbers) = numbers {
        let mut pairs: Vec<(i64, String)> = numbers.into_iter().zip(labels).collect();
        pairs.sort();
        labels = pairs.into_iter().map(|(_, l)| l).collect();
    }
    labels
}

/// The class index of `label`: DR grades must be the integers 0–4 as written (`"02"` and
/// `"2.0"` are not grades); generic labels must match a class exactly.
fn class_index(classes: &[String], label: &str, format: ManifestFormat) -> Option<usize> {
    match format {
        ManifestFormat::Generic => classes.iter().position(|c| c == label),
        _ => DR_GRADES.iter().position(|g| *g == label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_case_insensitively() {
        let f = Path::new("m.csv");
        assert_eq!(
            ManifestFormat::detect(&["id_code", "diagnosis", "sex"], f).unwrap(),
            ManifestFormat::Aptos
        );
        assert_eq!(
            ManifestFormat::detect(&["Image", "LEVEL"], f).unwrap(),
            ManifestFormat::EyePacs
        );
        assert_eq!(
            ManifestFormat::detect(&["label", "site", "path"], f).unwrap(),
            ManifestFormat::Generic
        );
    }

    #[test]
    fn detect_names_missing_column() {
        let err = ManifestFormat::detect(&["id_code", "grade"], Path::new("m.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.csv, line 1: APTOS manifest is missing column `diagnosis`"
        );
        let err = ManifestFormat::detect(&["file", "grade"], Path::new("m.csv")).unwrap_err();
        assert!(matches!(err, DatasetError::UnknownFormat { .. }), "{err}");
    }

    #[test]
    fn integer_labels_sort_numerically() {
        let row = |l: &str| Row {
            line: 2,
            label: l.into(),
            path: PathBuf::new(),
            patient_id: None,
            attributes: BTreeMap::new(),
        };
        assert_eq!(
            sorted_labels(&[row("10"), row("2"), row("-1"), row("2")]),
            vec!["-1", "2", "10"]
        );
        assert_eq!(
            sorted_labels(&[row("normal"), row("10"), row("2")]),
            vec!["10", "2", "normal"]
        );
    }

    #[test]
    fn line_index_counts_blank_lines() {
        let idx = LineIndex::new(b"a,b\n1,2\n\r\n3,4\n");
        let at = |byte| {
            let mut p = csv::Position::new();
            p.set_byte(byte);
            idx.line_of(Some(&p))
        };
        // A record read from the start of the blank line 3 starts on line 4.
        assert_eq!([at(0), at(4), at(8), at(10)], [1, 2, 4, 4]);
        assert_eq!(idx.line_of(None), 1);
    }

    #[test]
    fn grades_must_be_written_as_integers() {
        let g: Vec<String> = DR_GRADES.iter().map(|s| s.to_string()).collect();
        assert_eq!(class_index(&g, "3", ManifestFormat::Aptos), Some(3));
        assert_eq!(class_index(&g, "7", ManifestFormat::Aptos), None);
        assert_eq!(class_index(&g, "2.0", ManifestFormat::EyePacs), None);
    }
}
