//! Errors from loading and splitting data sets; every one names the file (and CSV line) at fault.
use std::path::PathBuf;

/// What can go wrong reading a data set or splitting it.
///
/// Messages start with the offending file or folder, then the CSV line where there is one
/// (1-based, the header is line 1), so a user can jump straight to the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A file or folder could not be read.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or folder being read.
        path: PathBuf,
        /// The underlying I/O error (in the message, not chained as `source()`).
        cause: std::io::Error,
    },
    /// An image folder has no class sub-folders.
    #[error("{}: no class sub-folders (expected one sub-folder of images per class)", dir.display())]
    NoClasses {
        /// The image folder.
        dir: PathBuf,
    },
    /// A class has no images: an empty class folder, or a class of a fixed list that no
    /// manifest row uses.
    #[error("{}: class {class:?} has no images", file.display())]
    EmptyClass {
        /// The class folder or CSV manifest.
        file: PathBuf,
        /// The class without samples.
        class: String,
    },
    /// A CSV manifest is empty (not even a header).
    #[error("{}: empty manifest (no header line)", file.display())]
    EmptyManifest {
        /// The CSV manifest.
        file: PathBuf,
    },
    /// A CSV manifest has a header but no data rows (or no data at all for a data set).
    #[error("{}: no samples", file.display())]
    NoSamples {
        /// The CSV manifest or image folder.
        file: PathBuf,
    },
    /// The header matches no known manifest format.
    #[error(
        "{}, line 1: header {header:?} is not a known manifest format; expected \
         `id_code,diagnosis` (APTOS), `image,level` (EyePACS) or `path,label` (generic)",
        file.display()
    )]
    UnknownFormat {
        /// The CSV manifest.
        file: PathBuf,
        /// The header's column names.
        header: Vec<String>,
    },
    /// The header has one key column of a format but lacks the other.
    #[error("{}, line 1: {format} manifest is missing column `{column}`", file.display())]
    MissingColumn {
        /// The CSV manifest.
        file: PathBuf,
        /// The format the header partly matches.
        format: &'static str,
        /// The missing column's name.
        column: &'static str,
    },
    /// A CSV line could not be parsed (wrong number of fields, bad UTF-8, duplicate column).
    #[error("{}, line {line}: {message}", file.display())]
    MalformedRow {
        /// The CSV manifest.
        file: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong with the line.
        message: String,
    },
    /// A manifest row names an image that does not exist.
    #[error("{}, line {line}: image {image} not found{}", file.display(), tried_list(tried))]
    MissingImage {
        /// The CSV manifest.
        file: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// The image as the row names it (an id code or a path).
        image: String,
        /// The paths looked at, in order.
        tried: Vec<PathBuf>,
    },
    /// A manifest row has a label outside the data set's classes.
    #[error("{}, line {line}: unknown label {label:?}; expected one of {}", file.display(), expected.join(", "))]
    UnknownLabel {
        /// The CSV manifest.
        file: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// The label as written.
        label: String,
        /// The allowed labels.
        expected: Vec<String>,
    },
    /// An option that does not apply to the manifest's format was given.
    #[error("{}: {message}", file.display())]
    BadOptions {
        /// The CSV manifest.
        file: PathBuf,
        /// Which option and why.
        message: String,
    },
    /// A label mapping produced a class index outside the new class list.
    #[error("label map sent class {from} to {to}, but there are only {classes} classes")]
    LabelOutOfRange {
        /// The original class index.
        from: usize,
        /// The index the mapping returned.
        to: usize,
        /// Number of classes in the new list.
        classes: usize,
    },
    /// Referable-DR mapping asked of a data set whose classes are not the grades 0–4.
    #[error("{}: classes {classes:?} are not the DR grades 0-4", dataset.display())]
    NotDrGrades {
        /// Where the data set was read from.
        dataset: PathBuf,
        /// Its classes.
        classes: Vec<String>,
    },
    /// Split fractions are negative, not finite, or do not sum to 1.
    #[error("invalid split fractions train={train} val={val} test={test}: {reason}")]
    InvalidFractions {
        /// Train fraction.
        train: f64,
        /// Validation fraction.
        val: f64,
        /// Test fraction.
        test: f64,
        /// Why they are rejected.
        reason: &'static str,
    },
    /// Fewer patient groups than non-empty splits requested.
    #[error("{}: {groups} patient group(s) cannot fill {splits} non-empty split(s)", dataset.display())]
    TooFewGroups {
        /// Where the data set was read from.
        dataset: PathBuf,
        /// Number of groups (patients, or samples without a patient id).
        groups: usize,
        /// Number of splits with a positive fraction.
        splits: usize,
    },
}

fn tried_list(tried: &[PathBuf]) -> String {
    if tried.is_empty() {
        return String::new();
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(" (tried {})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_image_lists_tried_paths() {
        let err = DatasetError::MissingImage {
            file: PathBuf::from("/d/train.csv"),
            line: 3,
            image: "abc".into(),
            tried: vec![PathBuf::from("/d/abc.png"), PathBuf::from("/d/abc.jpg")],
        };
        assert_eq!(
            err.to_string(),
            "/d/train.csv, line 3: image abc not found (tried /d/abc.png, /d/abc.jpg)"
        );
    }

    #[test]
    fn unknown_label_lists_expected() {
        let err = DatasetError::UnknownLabel {
            file: PathBuf::from("m.csv"),
            line: 2,
            label: "7".into(),
            expected: vec!["0".into(), "1".into()],
        };
        assert_eq!(
            err.to_string(),
            "m.csv, line 2: unknown label \"7\"; expected one of 0, 1"
        );
    }
}
