//! Integration tests of fovea-shared, one module per concern.

/// Decoding raster images and DICOM objects, privacy and bad input.
mod decode;
/// Locating the cached real sample images.
mod support;
