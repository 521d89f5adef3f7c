//! Integration tests of fovea-shared, one module per concern.

/// Locating the cached real sample images.
mod support;
