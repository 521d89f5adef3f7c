//! Image-folder data sets: one sub-folder of images per class, class names sorted.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Dataset, DatasetError, Sample};

/// File extensions read as images (compared case-insensitively): raster formats and DICOM.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "png", "jpg", "jpeg", "tif", "tiff", "bmp", "dcm", "dicom", "dic",
];

/// Whether `path`'s extension is one of [`IMAGE_EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Entries of `dir`, sorted by path, hidden ones left out.
fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io = |cause| DatasetError::Io {
        path: dir.to_path_buf(),
        cause,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if !is_hidden(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

impl Dataset {
    /// Reads `dir/<class>/<image>`: every visible sub-folder is a class (sorted by name), every
    /// visible file in it with an image extension ([`IMAGE_EXTENSIONS`]) a sample. Other files,
    /// nested folders and loose files in `dir` are ignored. Images are not decoded.
    ///
    /// Errors: [`DatasetError::Io`] if `dir` cannot be read, [`DatasetError::NoClasses`] if it
    /// has no sub-folder, [`DatasetError::EmptyClass`] naming the first class folder without
    /// images.
    pub fn from_folder(dir: impl AsRef<Path>) -> Result<Dataset, DatasetError> {
        let dir = dir.as_ref();
        let class_dirs: Vec<PathBuf> = visible_entries(dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            return Err(DatasetError::NoClasses {
                dir: dir.to_path_buf(),
            });
        }
        let mut classes = Vec::with_capacity(class_dirs.len());
        let mut samples = Vec::new();
        for (label, class_dir) in class_dirs.iter().enumerate() {
            let class = class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let before = samples.len();
            for path in visible_entries(class_dir)? {
                if path.is_file() && has_image_extension(&path) {
                    samples.push(Sample {
                        path,
                        label,
                        patient_id: None,
                        attributes: BTreeMap::new(),
                    });
                }
            }
            if samples.len() == before {
                return Err(DatasetError::EmptyClass {
                    file: class_dir.clone(),
                    class,
                });
            }
            classes.push(class);
        }
        Ok(Dataset {
            classes,
            samples,
            source: dir.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_case_insensitive() {
        assert!(has_image_extension(Path::new("a/b.PNG")));
        assert!(has_image_extension(Path::new("b.Jpeg")));
        assert!(has_image_extension(Path::new("scan.dcm")));
        assert!(!has_image_extension(Path::new("notes.txt")));
        assert!(!has_image_extension(Path::new("png")));
    }

    #[test]
    fn hidden_names_start_with_a_dot() {
        assert!(is_hidden(Path::new("x/.DS_Store")));
        assert!(!is_hidden(Path::new("x/a.png")));
    }
}
