//! Integration tests of the `host` binary, one module per command.

/// `host model`: stage strings and parameter counts of the EfficientNet variants.
mod model;
