//! Reading labelled data sets: image folders, CSV manifests, DICOM files, and splits.
//!
//! - [`Dataset::from_folder`]: `dir/<class>/<image>`, one sub-folder per class;
//! - [`Dataset::from_csv`]: APTOS (`id_code,diagnosis`), EyePACS (`image,level`) or generic
//!   (`path,label[,…]`) manifests, extra columns kept as subgroup [`Sample::attributes`];
//! - [`split()`]: seeded, label-stratified train/val/test split keeping each patient in one split;
//! - [`Dataset::to_referable`]: DR grades 0–4 to the binary referable-DR task.
//!
//! DICOM files (`.dcm`, `.dicom`, `.dic`) are samples like any other image; nothing here
//! decodes pixels (that is [`crate::decode`]'s job), loaders only check that files exist.
mod error;
mod folder;
mod manifest;
mod sample;
mod split;

pub use error::DatasetError;
pub use folder::{IMAGE_EXTENSIONS, has_image_extension};
pub use manifest::{CsvOptions, ManifestFormat, PATIENT_ID_COLUMN, STEM_EXTENSIONS};
pub use sample::{DR_GRADES, Dataset, REFERABLE_CLASSES, REFERABLE_MIN_GRADE, Sample};
pub use split::{Split, SplitFractions, split};
