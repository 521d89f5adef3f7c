//! Integration tests of the `host` binary, one module per command.

/// `host weights inspect` on golden tiny state dicts and the real EfficientNet-Lite weights.
mod weights;
