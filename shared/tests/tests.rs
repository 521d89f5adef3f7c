//! Integration tests of fovea-shared, one module per concern.
