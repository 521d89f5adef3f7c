//! Integration tests of fovea-shared, one module per concern.

/// The signed device bundle: round trip, tampering, truncation, keys, random input.
mod bundle;
/// Data set loaders (folders, CSV manifests) and the patient-grouped stratified split.
mod dataset;
/// Decoding real fundus, X-ray and DICOM samples against pydicom and Pillow; bad input.
mod decode;
/// Installing bundles on a device folder: previous kept, rollback, refusals, interruption.
mod device;
/// FOV detection and the quality gate on real fundus photographs.
mod fov_samples;
/// Metrics end to end: a referable-DR screening report against scikit-learn.
mod metrics;
/// Locating the cached real sample images.
mod support;
