//! Integration tests of the `host` binary, one module per command.

/// `host synth`: the synthetic fundus data set.
mod synth;
