//! Integration tests of fovea-shared, one module per concern.

/// Locating the cached real sample images.
mod support;

/// Metrics end to end: a referable-DR screening report against scikit-learn.
mod metrics;
